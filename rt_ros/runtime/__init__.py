"""ROS-free inference: action codecs, token cache, ONNX sessions, instruction encoders, Policy.

Nothing here imports torch or rclpy: a robot needs only this package, onnxruntime and tokenizers.
"""
