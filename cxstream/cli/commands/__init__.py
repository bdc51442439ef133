"""The command line's groups, one module each; cli.main puts them together."""
