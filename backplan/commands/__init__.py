"""One module per command group; ``backplan.cli`` registers them."""
