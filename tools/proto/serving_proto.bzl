"""C++ proto libraries for the installed tensorflow-serving-api's .proto files."""

_PROTOC = "@com_google_protobuf//:protoc"

def serving_cc_proto_library(name, proto, descriptor_set, deps = []):
    """`name`: C++ for `proto` (e.g. tensorflow_serving/apis/predict.proto).

    Args:
      name: the cc_library, e.g. "predict_cc_proto".
      proto: the file's import path inside the wheel's descriptors.
      descriptor_set: a FileDescriptorSet holding `proto` and its imports.
      deps: the cc_proto libraries of the serving protos `proto` imports.
    """
    stem = proto.rsplit("/", 1)[-1][:-len(".proto")]
    native.genrule(
        name = name + "_gen",
        srcs = [descriptor_set],
        outs = [stem + ".pb.h", stem + ".pb.cc"],
        tools = [_PROTOC],
        cmd = "$(location %s) --descriptor_set_in=$(location %s) --cpp_out=$(GENDIR) %s" % (
            _PROTOC,
            descriptor_set,
            proto,
        ),
    )
    native.cc_library(
        name = name,
        srcs = [stem + ".pb.cc"],
        hdrs = [stem + ".pb.h"],
        deps = deps + [
            "@com_google_protobuf//:protobuf",
            "@org_tensorflow//tensorflow/core:protos_all_cc",
        ],
    )
