# PlatformIO builder for tinysmile's emulated boards. Every board fact comes from the
# board manifest that tinysmile generates from boards/<id>.toml; nothing is named here.
# The toolchain is the system's arm-none-eabi-gcc (Debian: gcc-arm-none-eabi), not a
# registry package, so this platform builds offline.
import sys

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
cflags = board.get("build.tinysmile_cflags", [])

env.Replace(
    AR="arm-none-eabi-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="arm-none-eabi-gdb",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=r"^(?:\.text|\.rodata|\.ARM\.exidx|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGSUFFIX=".elf",
)
env.Append(
    ASFLAGS=cflags,
    CCFLAGS=cflags + ["-ffunction-sections", "-fdata-sections"],
    LINKFLAGS=cflags
    + [
        "-nostartfiles",
        "--specs=nano.specs",
        "--specs=nosys.specs",
        "-Wl,--gc-sections",
        "-Wl,-Map,${BUILD_DIR}/program.map",
    ],
    LIBS=["c", "gcc"],
)
if board.get("build.ldscript", ""):
    env.Replace(LDSCRIPT_PATH=board.get("build.ldscript"))

target_elf = env.BuildProgram()
target_size = env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Program size"))
AlwaysBuild(target_size)

# Upload = boot the image in the emulator; tinysmile records the pty and pid so that
# verify/profile find it and `tinysmile stop` ends it.
upload = env.Alias(
    "upload",
    target_elf,
    env.VerboseAction(
        '"{}" -m tinysmile.device.emulator start --board {} --elf $SOURCE --model-sha256 {}'.format(
            env.subst("$PYTHONEXE") or sys.executable,
            env.GetProjectOption("custom_tinysmile_board"),
            env.GetProjectOption("custom_tinysmile_model_sha256", "-"),
        ),
        "Booting the emulator",
    ),
)
AlwaysBuild(upload)
Default([target_elf, target_size])
