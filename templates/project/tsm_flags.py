# PlatformIO extra script written by tinysmile.
# - The strict flags (-Wall -Wextra -Werror and the C standard) apply to tinysmile's own C
#   sources only, through a build middleware, so a warning inside an Arduino core or a
#   library never fails the build.
# - The C++ flags (TFLite Micro's: C++17, no RTTI, no exceptions) go to every C++ file,
#   the library's included: they must agree, and build_flags would hand them to C too.
Import("env")  # noqa: F821 - provided by PlatformIO's SCons

flags = env.GetProjectOption("custom_tinysmile_strict_flags", "").split()  # noqa: F821
dirs = env.GetProjectOption("custom_tinysmile_strict_dirs", "").split()  # noqa: F821
cxx = env.GetProjectOption("custom_tinysmile_cxx_flags", "").split()  # noqa: F821
c_only = [f for f in flags if f.startswith("-std=c")]
common = [f for f in flags if not f.startswith("-std=c")]

if cxx:
    env.Append(CXXFLAGS=cxx)  # noqa: F821


def strict(env, node):
    # C only: the .cpp files include an Arduino core's or TFLite Micro's headers, whose
    # warnings are not ours to fail on. The C is also built with -Werror in tinysmile's CI.
    if not str(node).endswith(".c"):
        return node
    return env.Object(node, CCFLAGS=env["CCFLAGS"] + common + c_only)


for d in dirs:
    env.AddBuildMiddleware(strict, f"*/src/{d}/*")  # noqa: F821
