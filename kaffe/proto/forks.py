"""Which parts of kaffe's caffe.proto come from Caffe forks, and from which.

caffe.proto is BVLC Caffe's schema plus one marked block of fork additions
(see "FORK ADDITIONS" in caffe.proto for the numbering rules). This module is
the machine-readable index of that block: error messages use it to say which
forks kaffe reads, and the schema tests use it to prove that removing these
additions gives back BVLC's schema byte for byte.
"""
from collections import OrderedDict

# fork id -> (what it is, where its caffe.proto lives)
FORKS = OrderedDict([
    ("ssd", ("SSD", "weiliu89/caffe, ssd branch")),
    ("fast-rcnn", ("Fast/Faster R-CNN", "rbgirshick/caffe-fast-rcnn")),
    ("rfcn", ("R-FCN", "daijifeng001/caffe-rfcn")),
    ("opencv", ("OpenCV's merged schema",
                "opencv/opencv modules/dnn/src/caffe/opencv-caffe.proto")),
    ("segnet", ("SegNet", "alexgkendall/caffe-segnet")),
    ("deeplab", ("DeepLab/PSPNet", "deeplab-public-ver2, hszhao/PSPNet")),
    ("shufflenet", ("ShuffleNet", "farmingyard/ShuffleNet")),
    ("ocr", ("CRNN-style OCR", "senlinuc/caffe_ocr")),
    ("pr3057", ("pooling ceil_mode", "BVLC/caffe pull request #3057 and the "
                "forks that merged it")),
])

# Whole messages that exist only in forks: name -> fork id.
FORK_MESSAGES = OrderedDict([
    ("LabelMapItem", "ssd"), ("LabelMap", "ssd"), ("Sampler", "ssd"),
    ("SampleConstraint", "ssd"), ("BatchSampler", "ssd"),
    ("EmitConstraint", "ssd"), ("NormalizedBBox", "ssd"),
    ("Annotation", "ssd"), ("AnnotationGroup", "ssd"),
    ("AnnotatedDatum", "ssd"), ("ResizeParameter", "ssd"),
    ("SaltPepperParameter", "ssd"), ("NoiseParameter", "ssd"),
    ("DistortionParameter", "ssd"), ("ExpansionParameter", "ssd"),
    ("AnnotatedDataParameter", "ssd"),
    ("NonMaximumSuppressionParameter", "ssd"),
    ("SaveOutputParameter", "ssd"), ("PriorBoxParameter", "ssd"),
    ("DetectionOutputParameter", "ssd"),
    ("DetectionEvaluateParameter", "ssd"), ("MultiBoxLossParameter", "ssd"),
    ("NormalizeParameter", "ssd"), ("PermuteParameter", "ssd"),
    ("VideoDataParameter", "ssd"),
    ("ROIPoolingParameter", "fast-rcnn"),
    ("PSROIPoolingParameter", "rfcn"),
    ("ProposalParameter", "opencv"),
    ("BNParameter", "segnet"), ("UpsampleParameter", "segnet"),
    ("DenseImageDataParameter", "segnet"),
    ("InterpParameter", "deeplab"),
    ("ShuffleChannelParameter", "shufflenet"),
    ("CTCDecoderParameter", "ocr"), ("CTCLossParameter", "ocr"),
    ("ReverseParameter", "ocr"), ("ReverseTimeParameter", "ocr"),
    ("TransposeParameter", "ocr"), ("LSTMParameter", "ocr"),
])

# Fork fields added to BVLC messages (or, for opencv, to a fork message):
# (message, field) -> (fork id, number in kaffe, number in the fork).
# The two numbers differ where the fork's number was taken (see caffe.proto).
FORK_FIELDS = OrderedDict([
    (("LayerParameter", "annotated_data_param"), ("ssd", 200, 200)),
    (("LayerParameter", "multibox_loss_param"), ("ssd", 201, 201)),
    (("LayerParameter", "permute_param"), ("ssd", 202, 202)),
    (("LayerParameter", "prior_box_param"), ("ssd", 203, 203)),
    (("LayerParameter", "detection_output_param"), ("ssd", 204, 204)),
    (("LayerParameter", "detection_evaluate_param"), ("ssd", 205, 205)),
    (("LayerParameter", "norm_param"), ("ssd", 206, 206)),
    (("LayerParameter", "video_data_param"), ("ssd", 207, 207)),
    (("LayerParameter", "roi_pooling_param"), ("fast-rcnn", 8266711, 8266711)),
    (("LayerParameter", "psroi_pooling_param"), ("rfcn", 10002, 10002)),
    (("LayerParameter", "proposal_param"), ("opencv", 10201, 201)),
    (("LayerParameter", "bn_param"), ("segnet", 45, 45)),
    (("LayerParameter", "upsample_param"), ("segnet", 10137, 137)),
    (("LayerParameter", "dense_image_data_param"), ("segnet", 10138, 138)),
    (("LayerParameter", "shuffle_channel_param"), ("shufflenet", 164, 164)),
    (("LayerParameter", "ctc_decoder_param"), ("ocr", 158, 158)),
    (("LayerParameter", "ctc_loss_param"), ("ocr", 159, 159)),
    (("LayerParameter", "reverse_param"), ("ocr", 160, 160)),
    (("LayerParameter", "reverse_time_param"), ("ocr", 161, 161)),
    (("LayerParameter", "transpose_param"), ("ocr", 8266710, 8266710)),
    (("LayerParameter", "lstm_param"), ("ocr", 8276711, 8266711)),
    # DeepLab's own number is 143 (BVLC's input_param); 162 is the OCR fork's.
    (("LayerParameter", "interp_param"), ("deeplab", 162, 143)),
    (("PoolingParameter", "ceil_mode"), ("pr3057", 10013, 13)),
    (("DropoutParameter", "scale_train"), ("fast-rcnn", 2, 2)),
    (("DropoutParameter", "sample_weights_test"), ("segnet", 10002, 2)),
    (("TransformationParameter", "resize_param"), ("ssd", 8, 8)),
    (("TransformationParameter", "noise_param"), ("ssd", 9, 9)),
    (("TransformationParameter", "emit_constraint"), ("ssd", 10, 10)),
    (("TransformationParameter", "crop_h"), ("ssd", 11, 11)),
    (("TransformationParameter", "crop_w"), ("ssd", 12, 12)),
    (("TransformationParameter", "distort_param"), ("ssd", 13, 13)),
    (("TransformationParameter", "expand_param"), ("ssd", 14, 14)),
    (("PriorBoxParameter", "offset_h"), ("opencv", 14, 14)),
    (("PriorBoxParameter", "offset_w"), ("opencv", 15, 15)),
    (("PriorBoxParameter", "width"), ("opencv", 16, 16)),
    (("PriorBoxParameter", "height"), ("opencv", 17, 17)),
    (("DetectionOutputParameter", "normalized_bbox"), ("opencv", 10010, 10)),
    # PSPNet's fields of the BN message it shares with SegNet.
    (("BNParameter", "slope_filler"), ("deeplab", 10001, 1)),
    (("BNParameter", "bias_filler"), ("deeplab", 10002, 2)),
    (("BNParameter", "momentum"), ("deeplab", 10003, 3)),
    (("BNParameter", "eps"), ("deeplab", 4, 4)),
    (("BNParameter", "frozen"), ("deeplab", 5, 5)),
])


def fork_of(message, field=None):
    """The fork id a message (or one of its fields) comes from, else None."""
    if field is not None and (message, field) in FORK_FIELDS:
        return FORK_FIELDS[(message, field)][0]
    return FORK_MESSAGES.get(message)


def known_forks_sentence():
    """One sentence naming the forks whose fields kaffe reads."""
    names = [name for fork, (name, _) in FORKS.items() if fork != "pr3057"]
    return ("kaffe knows the fields of BVLC Caffe and of the forks "
            + ", ".join(names) + ", and pooling's ceil_mode")
