"""moodspace training: corpora, data set readers, trainers, evaluation. Imports ``models``, never ``app``."""
