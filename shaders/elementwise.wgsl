// Fused elementwise map with NumPy broadcasting.
// One thread per output element of a contiguous output, or per four of them
// (vec4 loads and stores) when every input allows it. The TS side (fusedStep
// in src/gpu/fuse.ts) fills in the generated parts marked {{...}}: the
// output and input bindings, one load per input, and the fused expression
// of the chain.
//
// Param words (u32, see P below):
//   0: n (threads: outputs, or outputs / 4)   1: rank   4..11: output dims
//   12 + 8*k ..: strides of broadcast input k (0 on broadcast axes)
//   64..127: constants of the expression (f32 or u32 bit patterns)

struct Params { w: array<vec4<u32>, 32> }
@group(0) @binding(0) var<uniform> P: Params;
{{BINDINGS}}

{{SCALAR_FUNCTIONS}}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p(0u)) { return; }
{{BODY}}
}
