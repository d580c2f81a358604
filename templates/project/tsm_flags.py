# PlatformIO extra script written by tinysmile.
# - The strict flags (-Wall -Wextra -Werror and the C standard) apply to tinysmile's own C
#   sources only, through a build middleware, so a warning inside an Arduino core or a
#   library never fails the build.
# - The optimisation flags (custom_tinysmile_opt_flags) replace the framework's on
#   tinysmile's own sources (C and C++): an Arduino core building with -Os still runs the
#   kernels at the -O2 the emulator measures. The framework's own files keep its flags.
# - The C++ flags (TFLite Micro's: C++17, no RTTI, no exceptions) go to every C++ file,
#   the library's included: they must agree, and build_flags would hand them to C too.
# - A flag sequence a core forces on every C++ file (Apollo3 core v1: `-include Arduino.h`,
#   whose abs/min/max macros break the C++ standard headers TFLite Micro includes) is taken
#   off our C++ files and the files under custom_tinysmile_cxx_drop_dirs (the TFLite Micro
#   library); the core's own files keep it.
import re

Import("env")  # noqa: F821 - provided by PlatformIO's SCons

flags = env.GetProjectOption("custom_tinysmile_strict_flags", "").split()  # noqa: F821
dirs = env.GetProjectOption("custom_tinysmile_strict_dirs", "").split()  # noqa: F821
cxx = env.GetProjectOption("custom_tinysmile_cxx_flags", "").split()  # noqa: F821
opt = env.GetProjectOption("custom_tinysmile_opt_flags", "").split()  # noqa: F821
drop = env.GetProjectOption("custom_tinysmile_cxx_drop", "").split()  # noqa: F821
drop_dirs = env.GetProjectOption("custom_tinysmile_cxx_drop_dirs", "").split()  # noqa: F821
ours_dirs = [f"/src/{d}/" for d in dirs]
c_only = [f for f in flags if f.startswith("-std=c")]
common = [f for f in flags if not f.startswith("-std=c")]
_OPT = re.compile(r"-O([0-3sgz]|fast)?$")

if cxx:
    env.Append(CXXFLAGS=cxx)  # noqa: F821


def _without_opt(values):
    return [f for f in values if not (isinstance(f, str) and _OPT.match(f))]


def _without_seq(values, seq):
    values, n, out, i = list(values), len(seq), [], 0
    while i < len(values):
        if n and values[i : i + n] == seq:
            i += n
        else:
            out.append(values[i])
            i += 1
    return out


def ours(env, node):
    # One middleware for every job: PlatformIO hands each middleware's result to the next.
    path = node.srcnode().get_abspath()
    is_c = path.endswith(".c")
    mine = any(d in path for d in ours_dirs)
    lib = any(path.startswith(d.rstrip("/") + "/") for d in drop_dirs)
    is_cxx = path.endswith((".cpp", ".cc", ".cxx"))
    kw = {}
    if drop and is_cxx and (mine or lib):
        flags = _without_seq(env.get("CXXFLAGS", []), drop)
        # The core appends its own C++ standard (gnu++11) after this script ran: ours comes
        # last, as its GNU dialect (the core's headers use newlib's non-ISO toascii).
        std = [f.replace("-std=c++", "-std=gnu++") for f in cxx if f.startswith("-std=")]
        if std:
            flags = [f for f in flags if not str(f).startswith("-std=")] + std
        kw["CXXFLAGS"] = flags
    if not mine:
        return env.Object(node, **kw) if kw else node
    if opt:
        # The framework may put its -Os anywhere (CPPFLAGS comes last on gcc's line).
        for var in ("CPPFLAGS", "CFLAGS", "CXXFLAGS"):
            kw[var] = _without_opt(kw.get(var, env.get(var, [])))
        kw["CCFLAGS"] = _without_opt(env["CCFLAGS"]) + opt
    if is_c:
        # C only: the .cpp files include an Arduino core's or TFLite Micro's headers, whose
        # warnings are not ours to fail on. The C is also built with -Werror in tinysmile's CI.
        kw["CCFLAGS"] = list(kw.get("CCFLAGS", env["CCFLAGS"])) + common + c_only
    return env.Object(node, **kw) if kw else node


env.AddBuildMiddleware(ours)  # noqa: F821
