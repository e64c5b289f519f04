"""The CLI subcommands: each parses its options into a frozen config and calls the libraries."""
