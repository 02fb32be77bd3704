"""occseg.evaluation"""
