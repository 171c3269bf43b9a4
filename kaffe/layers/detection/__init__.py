"""Detection layers of the Caffe forks: SSD (PriorBox, Permute, Normalize,
DetectionOutput), Fast/Faster R-CNN (ROIPooling, Proposal) and R-FCN
(PSROIPooling).

Each module registers its layer with kaffe's public ``register_layer``
decorator and reads only public kaffe APIs, exactly as a layer package
outside kaffe would; nothing here is special-cased by the net.
"""
