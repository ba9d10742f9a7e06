// Op interfaces (inputs, attrs, shape functions) of the ReLU Lab library; kernels live in
// relu_kernels.cc (CPU) and relu_op_gpu.cu.cc (GPU).
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace relu_lab {

using absl::Status;
using tensorflow::shape_inference::InferenceContext;

// Output 0 has the shape of input 0 (UnchangedShape is not exported by TF 2.21's headers).
static Status SameShapeAsInput(InferenceContext* c) {
  c->set_output(0, c->input(0));
  return absl::OkStatus();
}

// Output 0 has the merged shape of inputs 0 and 1, which must be compatible.
static Status SameShapeAsBothInputs(InferenceContext* c) {
  tensorflow::shape_inference::ShapeHandle merged;
  TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &merged));
  c->set_output(0, merged);
  return absl::OkStatus();
}

REGISTER_OP("CustomRelu")
    .Input("features: T")
    .Output("activations: T")
    .Attr("T: {half, bfloat16, float, double}")
    .SetShapeFn(SameShapeAsInput)
    .Doc(R"doc(
Rectified linear unit, bitwise equal to tf.nn.relu on CPU: max(features, 0), NaN propagates.
features: any shape.
activations: same shape and dtype as features.
)doc");

REGISTER_OP("CustomReluGrad")
    .Input("gradients: T")
    .Input("features: T")
    .Output("backprops: T")
    .Attr("T: {half, bfloat16, float, double}")
    .SetShapeFn(SameShapeAsBothInputs)
    .Doc(R"doc(
Gradient of CustomRelu: gradients * (features > 0). Exactly 0 passes no gradient, so features
may be CustomRelu's input or its output.
gradients: gradients backpropagated to CustomRelu, any shape.
features: CustomRelu's inputs or outputs, same shape as gradients.
backprops: same shape as gradients.
)doc");

REGISTER_OP("BandwidthProbe")
    .Input("input: T")
    .Output("output: T")
    .Attr("T: {half, bfloat16, float, double}")
    .SetIsStateful()  // a calibration copy must never be folded or deduplicated away
    .SetShapeFn(SameShapeAsInput)
    .Doc(R"doc(
Plain copy of input through the same thread pool and split as CustomRelu, to measure the
memory bandwidth CustomRelu could reach.
input: any shape.
output: a copy of input.
)doc");

}  // namespace relu_lab
