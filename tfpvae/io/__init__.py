"""Data and files: datasets, streaming sources, saving and loading."""
