"""Held-out bounds, diagnostics and figures (``tfpvae.evaluation.plots`` imports matplotlib)."""
