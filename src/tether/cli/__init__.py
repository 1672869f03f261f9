"""The command line. ``tether.cli.main`` is the entry point; shared options and the error
handler live in ``tether.cli.options``; each feature's commands in ``tether.cli.commands``."""
