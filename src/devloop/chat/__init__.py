"""`devloop chat`: the agent working in place on the user's tree, every turn undoable."""
