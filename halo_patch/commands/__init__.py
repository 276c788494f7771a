"""One module per verb; each is a plain function that returns an exit code."""
