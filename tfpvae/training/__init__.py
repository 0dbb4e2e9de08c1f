"""Training machinery around the model: input pipeline, checks, fault guard, callbacks, tuning."""
