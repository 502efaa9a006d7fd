"""A small shop front: another package name, callable and layout than app/."""
