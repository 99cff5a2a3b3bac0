"""The run: the optimisation loop, the session around it, and assembling its parts from a config."""
