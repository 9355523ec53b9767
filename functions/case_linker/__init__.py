"""case-linker: turns Amazon Connect contact events and related-item requests into Cases related items."""
