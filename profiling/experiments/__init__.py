"""Experiments beside execution: whole-model scenarios, the guide's scenarios and claims, tf.distribute steps, remote capture. They use the same core."""
