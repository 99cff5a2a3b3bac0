"""The training code's source: a git repository checked out at a ref, or the working directory."""
