on_best_path = 5
