"""One module per actor: client, gateway, FastTrack, manager, and the journal the upstream parties write."""
