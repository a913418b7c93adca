"""The browser workshop: `opslabs workshop serve`, learner and trainer pages, terminals over websockets."""
