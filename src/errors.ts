// Every error the library throws on purpose is a GradGpuError, so callers can
// tell "you called it wrong" apart from bugs. Subclasses name the kind of fault.

/** The base class of every error the library throws on purpose. */
export class GradGpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that don't fit an operation (matmul inner dims, broadcasting, reshape sizes, ...). */
export class ShapeError extends GradGpuError {}
/** A bad argument value that is not about shapes: NaN sizes, wrong data length, bad axes. */
export class ValueError extends GradGpuError {}
/** A slice start/stop or an index outside the array. */
export class IndexError extends GradGpuError {}
/** An operation on an element type it does not take: grad with respect to an int32 argument, subtracting bools. */
export class DTypeError extends GradGpuError {}
/** Reading or using an array after dispose(), after it was donated, or a traced intermediate. */
export class DisposedArrayError extends GradGpuError {}
/** No WebGPU adapter, or the device could not be created. */
export class NoAdapterError extends GradGpuError {}
/** The GPUDevice was lost (driver reset, destroy(), ...). Call reinit() to get a new one. */
export class DeviceLostError extends GradGpuError {}
/** A buffer larger than the device allows, or an allocation that failed. */
export class OutOfMemoryError extends GradGpuError {}
/** grad/valueAndGrad misuse: non-scalar loss, bad argnums, bad hasAux output. */
export class GradError extends GradGpuError {}
/** A value is not a valid pytree (unsupported leaf, cycle), or leaves don't fit a treedef. */
export class TreeError extends GradGpuError {}
/** Two pytrees that must have the same structure differ; the message names the first differing path. */
export class TreeStructureError extends TreeError {}
/** Reading an array's values (data(), item()) inside a function that grad/valueAndGrad/vjp is tracing (JAX's ConcretizationTypeError). */
export class ConcretizationError extends GradGpuError {}
/** debugNans mode: an operation produced NaN. */
export class NanError extends GradGpuError {}
