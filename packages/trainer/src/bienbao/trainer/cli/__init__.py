"""The trainer's ``bienbao`` subcommands (registered through the ``bienbao.commands`` entry points)."""
