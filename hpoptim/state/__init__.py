"""A run's durable state: the journal and its lock, the history folded from it, outcomes."""
