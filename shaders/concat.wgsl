// Concatenation along one axis: each dispatch copies up to 15 inputs into
// their places in the output, so stacking K values (a scan's K losses) takes
// ceil(K / 15) dispatches, not one pad kernel per value. Like layout.wgsl it
// moves u32 words, bit for bit, whatever the dtype.
//
// Each array is seen as (outer, width): `outer` the product of the axes
// before the concatenation axis, `width` the axis times the axes after it.
// A call covers a run of consecutive inputs, `span` words of each output row;
// thread t is word r = t % span of row o = t / span of that run.
// Sizes are uniform words rather than literals, so one pipeline serves every
// shape with the same number of inputs.
//
// Param words: 0: threads (outer * span)  1: span  2: the output's width
// 3: where the run starts in an output row; then per input k:
// 4 + 2k: where input k ends in the run, 5 + 2k: input k's width.

struct Params { w: array<vec4<u32>, 9> }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
{{INPUTS}}

fn p(k: u32) -> u32 { return P.w[k / 4u][k % 4u]; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= p(0u)) { return; }
  let span = p(1u);
  let o = t / span;
  let r = t - o * span;
  var v = 0u;
  {{PICK}}
  out[o * p(2u) + p(3u) + r] = v;
}
