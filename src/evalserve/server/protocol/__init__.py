"""Wire models of the HTTP surfaces, one module per protocol."""
