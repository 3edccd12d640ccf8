"""The `evalserve` command line."""
