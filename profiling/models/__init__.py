"""The user's own Keras model: load it, walk its activation layers, rewrite it (what-ifs).

Everything here works on Keras objects in the process that loaded the model (the isolated
worker, for a user's file); nothing here times or stores anything.
"""
