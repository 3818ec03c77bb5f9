"""The `bark-tui` command line: one module a subcommand, shared arguments in `args`."""
