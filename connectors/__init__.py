"""Built-in connector plugins, one module per format."""
