"""The operator's commands, one file each, named as the command."""
