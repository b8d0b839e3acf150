"""tutorial"""
