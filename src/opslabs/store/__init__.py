"""Where opslabs keeps what outlives a command: verification results and workshop progress."""
