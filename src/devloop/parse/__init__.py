"""Pure text parsers shared by the agent side (the test hook, the queues) and the evaluation engine:
unified diffs and test-runner logs. Standard library only, so every layer may use them."""
