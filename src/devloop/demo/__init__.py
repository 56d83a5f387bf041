"""The bundled demo: a small repository with a bug, and a scripted model that fixes it."""
