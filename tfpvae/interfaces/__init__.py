"""What users drive: the command line, whole training runs and the notebooks' helpers."""
