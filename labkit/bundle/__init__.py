"""The offline bundle: the lock (what), fetch (get it once), verify (is it intact), serve (to a classroom)."""
