# PlatformIO extra script written by tinysmile.
# - The strict flags (-Wall -Wextra -Werror and the C standard) apply to tinysmile's own C
#   sources only, through a build middleware, so a warning inside an Arduino core or a
#   library never fails the build.
# - The optimisation flags (custom_tinysmile_opt_flags) replace the framework's on
#   tinysmile's own sources (C and C++): an Arduino core building with -Os still runs the
#   kernels at the -O2 the emulator measures. The framework's own files keep its flags.
# - The C++ flags (TFLite Micro's: C++17, no RTTI, no exceptions) go to every C++ file,
#   the library's included: they must agree, and build_flags would hand them to C too.
import re

Import("env")  # noqa: F821 - provided by PlatformIO's SCons

flags = env.GetProjectOption("custom_tinysmile_strict_flags", "").split()  # noqa: F821
dirs = env.GetProjectOption("custom_tinysmile_strict_dirs", "").split()  # noqa: F821
cxx = env.GetProjectOption("custom_tinysmile_cxx_flags", "").split()  # noqa: F821
opt = env.GetProjectOption("custom_tinysmile_opt_flags", "").split()  # noqa: F821
c_only = [f for f in flags if f.startswith("-std=c")]
common = [f for f in flags if not f.startswith("-std=c")]
_OPT = re.compile(r"-O([0-3sgz]|fast)?$")

if cxx:
    env.Append(CXXFLAGS=cxx)  # noqa: F821


def _without_opt(values):
    return [f for f in values if not (isinstance(f, str) and _OPT.match(f))]


def ours(env, node):
    # One middleware for both jobs: PlatformIO hands each middleware's result to the next.
    is_c = str(node).endswith(".c")
    if not is_c and not opt:
        return node
    kw = {}
    if opt:
        # The framework may put its -Os anywhere (CPPFLAGS comes last on gcc's line).
        for var in ("CPPFLAGS", "CFLAGS", "CXXFLAGS"):
            kw[var] = _without_opt(env.get(var, []))
        kw["CCFLAGS"] = _without_opt(env["CCFLAGS"]) + opt
    if is_c:
        # C only: the .cpp files include an Arduino core's or TFLite Micro's headers, whose
        # warnings are not ours to fail on. The C is also built with -Werror in tinysmile's CI.
        kw["CCFLAGS"] = list(kw.get("CCFLAGS", env["CCFLAGS"])) + common + c_only
    return env.Object(node, **kw)


for d in dirs:
    env.AddBuildMiddleware(ours, f"*/src/{d}/*")  # noqa: F821
