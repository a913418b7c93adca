"""`opslabs new`: write a fresh content repository from the files in files/ (package data)."""
