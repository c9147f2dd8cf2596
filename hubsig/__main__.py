"""``python -m hubsig`` runs the command line."""

from hubsig.cli import main_entry

main_entry()
