"""`devloop review`: a local web app where a person judges a run's patches; decisions go to reviews.jsonl."""
