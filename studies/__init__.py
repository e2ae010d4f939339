"""Built-in studies: one module per study, each defining ``study``."""
