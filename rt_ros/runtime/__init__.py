"""ROS-free inference: action codecs, frame-token cache, ONNX sessions, instruction encoders, Policy.

Nothing here imports torch or rclpy: a robot needs only this package, onnxruntime and tokenizers.
"""
