"""Visual checks of a run: ground truth against predictions as video (:mod:`.truth`) and the
training/validation dashboard (:mod:`.dashboard`)."""
