"""ROS-free inference: action codecs, token cache, inference backends (ONNX Runtime, OpenVINO)
behind one graph interface, instruction encoders, Policy.

Nothing here imports torch or rclpy: a robot needs only this package, onnxruntime and tokenizers
(and the `openvino` extra for the OpenVINO backend).
"""
