#!/usr/bin/perl
# Turns a .cu file of the CUDA backend into host C++ for the emulator: every
# `kernel<<<grid, block, shared, stream>>>(args)` becomes
# `EMU_LAUNCH(kernel, grid, block, shared, stream)(args)`; line breaks inside
# a launch are kept after it, so #line keeps messages on the original lines.
#   perl launch_rewrite.pl INPUT.cu OUTPUT.cc
use strict;
use warnings;
my ($in, $out) = @ARGV;
die "usage: launch_rewrite.pl INPUT.cu OUTPUT.cc\n" unless defined $out;
open(my $src, '<', $in) or die "launch_rewrite.pl: cannot read $in: $!\n";
my $text = do { local $/; <$src> };
close($src);
$text =~ s{\b([A-Za-z_]\w*(?:<[^<>()]*>)?)(\s*)<<<([^\n]*?)>>>(\s*)\(}{
  my ($kernel, $gap1, $config, $gap2) = ($1, $2, $3, $4);
  my $breaks = ($gap1 . $gap2) =~ tr/\n//;
  "EMU_LAUNCH($kernel, $config)(" . ("\n" x $breaks)
}ge;
if ($text =~ /(<<<|>>>)/) {
  my $line = 1 + (substr($text, 0, $-[0]) =~ tr/\n//);
  die "launch_rewrite.pl: $in:$line: a launch this script cannot rewrite\n";
}
open(my $dst, '>', $out) or die "launch_rewrite.pl: cannot write $out: $!\n";
print $dst "#include \"emu_device.h\"\n#line 1 \"$in\"\n", $text;
close($dst) or die "launch_rewrite.pl: cannot write $out: $!\n";
