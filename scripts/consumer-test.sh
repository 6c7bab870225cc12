#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, installed into a fresh temporary
# project with only its declared dependencies (plus webgpu, the optional peer
# dependency Node needs), then (a) a plain Node ESM script runs the reference
# problem and the README's pytree example on the CPU fallback, and (b) strict
# TypeScript without skipLibCheck, under nodenext and under bundler
# resolution, compiles a file that uses the API as the README does (test/types/usage.ts,
# imported from 'gradgpu'), and (c) a minimal Vite app importing the package
# builds, with no Node-only module in its bundle. Needs `npm run build` first (dist/).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$repo"
tgz="$tmp/$(npm pack --silent --pack-destination "$tmp" | tail -n 1)"
webgpu="$(node -p "require('./package.json').peerDependencies.webgpu")"
typescript="$(node -p "require('./package.json').devDependencies.typescript")"
vite="$(node -p "require('./package.json').devDependencies.vite")"
cd "$tmp"
npm init -y >/dev/null
npm install --no-audit --no-fund --loglevel=error "$tgz" "webgpu@$webgpu" >/dev/null
npm install --no-audit --no-fund --loglevel=error --save-dev "typescript@$typescript" "@types/node" "vite@$vite" >/dev/null
cat > smoke.mjs <<'JS'
import { gradOverFlatParams, grad, array, add, matmul, sum, square, init, deviceInfo } from 'gradgpu';

await init({ forceFallback: true });
const eq = (got, want, what) => {
  const g = Array.from(got);
  if (g.length !== want.length || g.some((v, i) => Math.abs(v - want[i]) > 1e-5)) throw new Error(`${what}: got [${g}], want [${want}]`);
};
eq(await gradOverFlatParams([1, 0, 0], [[2, 3]]).data(), [8, 12, 4], 'gradOverFlatParams([1, 0, 0], [[2, 3]])');
eq(await gradOverFlatParams([0, 0, 1], [[1, 0], [0, 1]]).data(), [2, 2, 4], 'gradOverFlatParams([0, 0, 1], I)');
const params = { w: array([1, 2]), b: array([0.5]) };
const x = array([[1, -1]]);
const g = grad((p, x) => sum(square(add(matmul(x, p.w), p.b))))(params, x);
eq(await g.w.data(), [-1, 1], 'pytree grads.w');
eq(await g.b.data(), [-1], 'pytree grads.b');
const info = await deviceInfo();
console.log(`consumer: the packed gradgpu ran the reference problem and the pytree example on ${info.vendor} ${info.architecture}`);
JS
node smoke.mjs

# (b) the types, as a consumer's strict compiler sees them.
node -e "const p=require('./package.json'); p.type='module'; require('fs').writeFileSync('package.json', JSON.stringify(p, null, 2))"
sed "s#'../../src/index'#'gradgpu'#" "$repo/test/types/usage.ts" > usage.ts
for resolution in nodenext bundler; do
  module=$([ "$resolution" = nodenext ] && echo nodenext || echo esnext)
  npx tsc --strict --noEmit --target es2022 --lib es2022,dom --types node --module "$module" --moduleResolution "$resolution" usage.ts
  echo "consumer: strict tsc (moduleResolution $resolution, no skipLibCheck) compiles the typed usages"
done

# (c) a browser app: Vite bundles it, and nothing Node-only comes along (Dawn is loaded only in Node, at run time).
mkdir -p app
cat > app/index.html <<'HTML'
<!doctype html>
<script type="module" src="./main.js"></script>
HTML
cat > app/main.js <<'JS'
import { gradOverFlatParams } from 'gradgpu';
gradOverFlatParams([1, 0, 0], [[2, 3]]).data().then((g) => (document.body.textContent = String(Array.from(g))));
JS
npx vite build app --outDir ../app-dist --emptyOutDir --logLevel error
bundle="$(cat app-dist/assets/*.js)"
if grep -Eq "from ?['\"](node:|webgpu)|require\(['\"](node:|webgpu)" <<<"$bundle"; then
  echo "consumer: the browser bundle imports a Node-only module" >&2
  exit 1
fi
grep -q "gradOverFlatParams\|flatParams" <<<"$bundle" || { echo "consumer: the bundle does not contain the library" >&2; exit 1; }
echo "consumer: a Vite app importing gradgpu builds ($(wc -c <<<"$bundle") bytes of JS), with no Node-only module in it"
